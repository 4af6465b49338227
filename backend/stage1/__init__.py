"""Stage 1, audio-visual instruction: speech features -> Q-Former -> soft prompt -> frozen LLM -> a sentence."""

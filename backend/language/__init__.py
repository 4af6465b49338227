"""The frozen pretrained language models both stages read through: the causal LM and the sentence encoders."""

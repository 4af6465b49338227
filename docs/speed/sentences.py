"""Stage-1 sentences (greedy and 8-sample vote) on a fixed clip set -> JSON."""
import json, sys, glob, time
from backend.audio import load_audio
from backend.emotions import named_emotions
from backend.pipeline import Pipeline, PipelineConfig
clips = ["assets/demo/line.wav", "/tmp/speed/short.wav"] + sorted(glob.glob("/tmp/speed/e?.wav")) + \
    sorted(glob.glob("/usr/share/asterisk/sounds/en/*.wav"))[::40]
out = []
for samples in (0, 8):
    pipe = Pipeline(PipelineConfig(describe_samples=samples))
    for c in clips:
        a = load_audio(c)
        t = time.perf_counter(); s = pipe.analyze(a); 
        out.append({"clip": c, "samples": samples, "sentence": s, "emotions": sorted(named_emotions(s)), "stage1_s": round(pipe.last_timings["stage1"], 3)})
        print(out[-1], flush=True)
json.dump(out, open(sys.argv[1], "w"), indent=1)

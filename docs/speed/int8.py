"""Stage-1 sentences with the LLM's Linear layers in dynamic int8 (torch.ao quantize_dynamic) against float32."""
import glob, json, time, statistics, torch
from backend.audio import load_audio
from backend.emotions import named_emotions
from backend.pipeline import Pipeline, PipelineConfig
torch.set_grad_enabled(False)
pipe = Pipeline(PipelineConfig(describe_samples=8))
llm, tok = pipe.llm
q8 = torch.ao.quantization.quantize_dynamic(llm, {torch.nn.Linear}, dtype=torch.qint8)
clips = ["assets/demo/line.wav", "/tmp/speed/short.wav"] + sorted(glob.glob("/tmp/speed/e?.wav")) + sorted(glob.glob("/usr/share/asterisk/sounds/en/*.wav"))[::40]
rows, times = [], {"fp32": [], "int8": []}
for c in clips:
    a = load_audio(c); f = pipe.features(a); w = pipe.words(a)
    q = pipe.stage1.qformer(f["style"], words=pipe._minilm.encode([w]).float() if w else None)
    r = {"clip": c}
    for name, model in (("fp32", llm), ("int8", q8)):
        for samples in (0, 8):
            t = time.perf_counter()
            r[f"{name}_{samples}"] = pipe.stage1.instructor.generate(q, tok, model, 0, 48, samples=samples, seed=0)[0]
            if samples: times[name].append(time.perf_counter() - t)
    rows.append(r); print(r, flush=True)
for samples in (0, 8):
    print(samples, "sentences changed", sum(r[f"fp32_{samples}"] != r[f"int8_{samples}"] for r in rows), "of", len(rows),
          "emotions changed", sum(named_emotions(r[f"fp32_{samples}"]) != named_emotions(r[f"int8_{samples}"]) for r in rows))
print({k: statistics.median(v) for k, v in times.items()})

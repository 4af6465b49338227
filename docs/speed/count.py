"""LLM work per stage-1 call, old (HF generate: greedy, then 8 samples as a batch) vs new (one prompt cache): token positions run."""
import glob, json, torch
from backend.audio import load_audio
from backend.pipeline import Pipeline, PipelineConfig
from backend.stage1 import _old
torch.set_grad_enabled(False)
pipe = Pipeline(PipelineConfig(describe_samples=8))
llm, tok = pipe.llm
count = {"calls": 0, "positions": 0}
def hook(module, args, kwargs):
    x = kwargs.get("inputs_embeds"); x = x if x is not None else kwargs.get("input_ids")
    count["calls"] += 1; count["positions"] += x.shape[0] * x.shape[1]
llm.model.register_forward_pre_hook(hook, with_kwargs=True)
old = _old.Instructor(pipe.stage1.instructor.config); old.load_state_dict(pipe.stage1.instructor.state_dict())
clips = ["assets/demo/line.wav", "/tmp/speed/short.wav"] + sorted(glob.glob("/tmp/speed/e?.wav")) + sorted(glob.glob("/usr/share/asterisk/sounds/en/*.wav"))[::40]
rows = []
for c in clips:
    a = load_audio(c); f = pipe.features(a); w = pipe.words(a)
    q = pipe.stage1.qformer(f["style"], words=pipe._minilm.encode([w]).float() if w else None)
    r = {"clip": c}
    for name, inst in (("old", old), ("new", pipe.stage1.instructor)):
        count.update(calls=0, positions=0)
        r[name + "_sentence"] = inst.generate(q, tok, llm, 0, 48, samples=8, seed=0)[0]
        r[name + "_calls"], r[name + "_positions"] = count["calls"], count["positions"]
    rows.append(r); print(r, flush=True)
json.dump(rows, open("/tmp/speed/count.json", "w"), indent=1)
tot = {k: sum(r[k] for r in rows) for k in ("old_calls", "new_calls", "old_positions", "new_positions")}
print(tot)

"""Stage 1 (8-sample vote) old against new, interleaved in one process, median of 5 each.
Reads the old instructor from git: git show 77084e2:backend/stage1/instructor.py > backend/stage1/_old.py"""
import statistics, sys, time, torch
from backend.audio import load_audio
from backend.pipeline import Pipeline, PipelineConfig
from backend.stage1 import _old
torch.set_grad_enabled(False)
pipe = Pipeline(PipelineConfig())
llm, tok = pipe.llm
old = _old.Instructor(pipe.stage1.instructor.config); old.load_state_dict(pipe.stage1.instructor.state_dict())
for path in sys.argv[1:]:
    a = load_audio(path); f = pipe.features(a); w = pipe.words(a)
    q = pipe.stage1.qformer(f["style"], words=pipe._minilm.encode([w]).float() if w else None)
    times = {"old": [], "new": []}
    for i in range(6):
        for name, inst in (("old", old), ("new", pipe.stage1.instructor)):
            t = time.perf_counter(); inst.generate(q, tok, llm, 0, 48, samples=8, seed=0); dt = time.perf_counter() - t
            if i: times[name].append(dt)  # the first round warms up
    print(path, {k: round(statistics.median(v), 3) for k, v in times.items()}, flush=True)

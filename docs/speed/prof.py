import cProfile, pstats, sys, time, statistics, io
import torch
from backend.audio import load_audio
from backend.pipeline import Pipeline, PipelineConfig
pipe = Pipeline(PipelineConfig())
for path in sys.argv[1:]:
    a = load_audio(path)
    pipe.generate(a, seed=0)  # warm
    rows = []
    for i in range(3):
        pipe.clear_cache()
        r = pipe.generate(a, seed=0)
        rows.append(r.timings)
    med = {k: round(statistics.median(t[k] for t in rows), 3) for k in rows[0]}
    print(path, a.samples.shape[0]/16000, med, r.instruction, flush=True)
    pipe.clear_cache()
    pr = cProfile.Profile(); pr.enable(); pipe.generate(a, seed=0); pr.disable()
    s = io.StringIO(); pstats.Stats(pr, stream=s).sort_stats("cumulative").print_stats(35); print(s.getvalue()[:6000])

import sys, statistics, json
from backend.audio import load_audio
from backend.pipeline import Pipeline, PipelineConfig
pipe = Pipeline(PipelineConfig())
out = {}
for path in sys.argv[2:]:
    a = load_audio(path)
    pipe.generate(a, seed=0)
    rows = []
    for i in range(5):
        pipe.clear_cache()
        rows.append(pipe.generate(a, seed=0).timings)
    out[path] = {k: round(statistics.median(t.get(k, 0) for t in rows), 3) for k in rows[0]}
    print(sys.argv[1], path, out[path], flush=True)
json.dump(out, open(f"/tmp/speed/timing_{sys.argv[1]}.json", "w"), indent=1)

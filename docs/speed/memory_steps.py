"""Resident memory after each step of a Generate: python docs/speed/memory_steps.py SECONDS (from the repository root, PYTHONPATH=.)."""
import resource, sys, time
import psutil
from backend.pipeline import Pipeline, PipelineConfig
from backend.audio import load_audio
from backend.bench.run import bench_speech
def rss(tag): print(f"{tag:12s} rss {psutil.Process().memory_info().rss/2**20:7.0f}  peak {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss/1024:7.0f}", flush=True)
p = Pipeline(PipelineConfig()); p.llm; p.transcriber; p.text_encoder; rss("loaded")
a = load_audio((bench_speech(float(sys.argv[1])), 16000)); rss("audio")
p.features(a); rss("features")
p.heard(a); rss("heard")
an = p.analyze(a); rss("analyze")
s = p.synthesize(a, an.instruction, seed=0); rss("synthesize")

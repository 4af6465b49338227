"""Peak resident memory of speech recognition on N seconds of the demo line repeated: python docs/speed/asr_memory.py SECONDS BATCH"""
import resource, sys, time
from backend.bench.run import bench_speech
from backend.speech import asr
from backend.speech.asr import Transcriber
asr.BATCH_CHUNKS = int(sys.argv[2])
samples = bench_speech(float(sys.argv[1]))
t = Transcriber()
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
start = time.perf_counter()
heard = t.transcribe(samples)
print({"seconds": float(sys.argv[1]), "batch_chunks": asr.BATCH_CHUNKS, "chunks": len(heard), "peak_mb_before": round(base),
       "peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024), "wall_s": round(time.perf_counter() - start, 1)})

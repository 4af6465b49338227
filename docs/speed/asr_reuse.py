import glob, time, statistics, numpy as np, torch, torch.nn.functional as F
from backend.audio import load_audio
from backend.speech import load_encoder
from backend.speech.asr import Transcriber
from backend.speech.whisper import CHUNK_SAMPLES, log_mel
torch.set_grad_enabled(False)
enc = load_encoder("whisper-tiny.en", None)
tr = Transcriber()
clips = ["assets/demo/line.wav", "/tmp/speed/short.wav"] + sorted(glob.glob("/tmp/speed/e?.wav")) + sorted(glob.glob("/usr/share/asterisk/sounds/en/*.wav"))[::20]
same = 0; diffs = []; tm = {"mel": [], "enc": []}
for c in clips:
    s = load_audio(c).samples
    window = F.pad(torch.from_numpy(s), (0, CHUNK_SAMPLES - len(s)))
    mel = log_mel(window, tr.mel_filters)[None]
    ours = enc.encoder(mel.to(enc.encoder.conv1.weight.dtype)).float().numpy()  # (1, 1500, 384)
    ct = np.array(tr.model.encode(tr._ct2.StorageView.from_array(np.ascontiguousarray(mel.numpy()))))
    diffs.append(float(np.abs(ours - ct).max()))
    budget = min(220, int(12 + 8 * len(s) / 16000))
    t = time.perf_counter(); a = tr._decode(np.ascontiguousarray(mel.numpy()), budget, beam_size=1); tm["mel"].append(time.perf_counter() - t)
    t = time.perf_counter(); b = tr._decode(np.ascontiguousarray(ours), budget, beam_size=1); tm["enc"].append(time.perf_counter() - t)
    same += a[0][0] == b[0][0]
    print(c, diffs[-1], a[0][:2], b[0][:2], flush=True)
print("same text", same, "of", len(clips), "max abs diff", max(diffs), "median decode s mel", statistics.median(tm["mel"]), "enc", statistics.median(tm["enc"]))

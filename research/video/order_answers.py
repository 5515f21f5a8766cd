import collections, sys
import modalign as ma
from modalign.data.worlds.motion import MotionWorld
m = ma.load(sys.argv[1]); m.eval()
w = MotionWorld(task="vqa", n=200, split="test")
rows = [w[i] for i in range(len(w)) if w.record(i)["qtype"] == sys.argv[2]][:40]
ans = []
for r in rows:
    a = m.generate(None, [r["question"] + " Answer with a single word or phrase."], video=[r["video"]], max_new_tokens=6)[0]
    ans.append((r["question"], a, r["answer"]))
c = collections.Counter()
for q, a, t in ans:
    named = [s for s in ("circle","square","triangle","star","cross","hexagon","heart","diamond") if s in q]
    c["right" if a.strip()==t else ("other named" if a.strip() in named else "not named")] += 1
print(c); [print(x) for x in ans[:12]]

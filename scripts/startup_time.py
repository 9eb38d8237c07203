#!/usr/bin/env python3
"""Time from spawning `infra serve` to the tools/list answer, cold (empty compile cache) and warm."""
import json, os, shutil, statistics, subprocess, sys, tempfile, time
BIN = sys.argv[1]
def once(home):
    env = dict(os.environ, INFRA_HOME=home, INFRA_LOG="warn")
    env.pop("INFRA_CACHE_DIR", None)
    t0 = time.perf_counter()
    p = subprocess.Popen([BIN, "serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
    msgs = [{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"0"}}},
            {"jsonrpc":"2.0","method":"notifications/initialized"},
            {"jsonrpc":"2.0","id":2,"method":"tools/list"}]
    for m in msgs: p.stdin.write((json.dumps(m)+"\n").encode())
    p.stdin.flush()
    while True:
        line = p.stdout.readline()
        if json.loads(line).get("id") == 2: break
    dt = (time.perf_counter() - t0) * 1000
    p.stdin.close(); p.wait()
    return dt
cold, warm = [], []
for _ in range(int(sys.argv[2]) if len(sys.argv) > 2 else 5):
    home = tempfile.mkdtemp()
    cold.append(once(home))
    for _ in range(3): warm.append(once(home))
    shutil.rmtree(home)
print(f"cold start (empty cache): median {statistics.median(cold):.0f} ms  (n={len(cold)}, min {min(cold):.0f}, max {max(cold):.0f})")
print(f"warm start (cache hit):   median {statistics.median(warm):.0f} ms  (n={len(warm)}, min {min(warm):.0f}, max {max(warm):.0f})")

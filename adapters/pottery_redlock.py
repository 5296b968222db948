import json, os, socket, time
import redis
from pottery import Redlock

env = os.environ
def say(event, **kw):
    print(json.dumps({"event": event, **kw}), flush=True)

host, port = env["LOCKSIM_RESOURCE"].rsplit(":", 1)
resource = socket.create_connection((host, int(port))).makefile("rw")
def write():
    resource.write("WRITE\n"); resource.flush(); resource.readline()

masters = {redis.Redis.from_url(url) for url in env["LOCKSIM_NODES"].split(",")}
works = [int(w) for w in env["LOCKSIM_WORK_MS"].split(",")]
thinks = [int(t) for t in env["LOCKSIM_THINK_MS"].split(",")]
timeout = int(env["LOCKSIM_ACQUIRE_TIMEOUT_MS"]) / 1000
lock = Redlock(key=env["LOCKSIM_KEY"], masters=masters,
               auto_release_time=int(env["LOCKSIM_TTL_MS"]) / 1000)
say("log", message=f"pottery locks the Redis key {lock.key!r}; retry delay is its own (0-200 ms)")
if env.get("LOCKSIM_WATCHDOG") == "1":
    say("log", message="pottery's Redlock has no watchdog (only manual extend()): running without one")
for i in range(int(env["LOCKSIM_ITERATIONS"])):
    say("acquiring")
    # pottery's timeout=0 would not try at all: a zero timeout means one non-blocking try
    if not (lock.acquire(timeout=timeout) if timeout > 0 else lock.acquire(blocking=False)):
        say("failed", reason="timeout")
    else:
        say("acquired")
        write(); time.sleep(works[i] / 1000); write()
        say("releasing")
        try:
            lock.release(); say("released", ok=True)
        except Exception as e:
            say("released", ok=False, error=f"{type(e).__name__}: {getattr(e, 'key', e)}")
    time.sleep(thinks[i] / 1000)

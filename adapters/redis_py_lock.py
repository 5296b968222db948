import json, os, socket, time
import redis

env = os.environ
def say(event, **kw):
    print(json.dumps({"event": event, **kw}), flush=True)

host, port = env["LOCKSIM_RESOURCE"].rsplit(":", 1)
resource = socket.create_connection((host, int(port))).makefile("rw")
def write():
    resource.write("WRITE\n"); resource.flush(); resource.readline()

if env.get("LOCKSIM_WATCHDOG") == "1":
    say("log", message="redis-py's Lock has no watchdog: running without one")
r = redis.Redis.from_url(env["LOCKSIM_NODES"].split(",")[0])
works = [int(w) for w in env["LOCKSIM_WORK_MS"].split(",")]
thinks = [int(t) for t in env["LOCKSIM_THINK_MS"].split(",")]
for i in range(int(env["LOCKSIM_ITERATIONS"])):
    lock = r.lock(env["LOCKSIM_KEY"], timeout=int(env["LOCKSIM_TTL_MS"]) / 1000,
                  sleep=int(env["LOCKSIM_RETRY_DELAY_MS"]) / 1000,
                  blocking_timeout=int(env["LOCKSIM_ACQUIRE_TIMEOUT_MS"]) / 1000)
    say("acquiring")
    try:
        acquired = lock.acquire() or "timeout"
    except redis.RedisError as e:
        acquired = f"{type(e).__name__}: {e}"
    if acquired is not True:
        say("failed", reason=acquired)
    else:
        say("acquired")
        write(); time.sleep(works[i] / 1000); write()
        say("releasing")
        try:
            lock.release(); say("released", ok=True)
        except Exception as e:
            say("released", ok=False, error=f"{type(e).__name__}: {e}")
    time.sleep(thinks[i] / 1000)

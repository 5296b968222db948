import json, math, os, socket, sys, threading, time
import redis, redis_lock

env = os.environ
def say(event, **kw):
    sys.stdout.write(json.dumps({"event": event, **kw}) + "\n"); sys.stdout.flush()

host, port = env["LOCKSIM_RESOURCE"].rsplit(":", 1)
resource = socket.create_connection((host, int(port))).makefile("rw")
def write():
    resource.write("WRITE\n"); resource.flush(); resource.readline()

# python-redis-lock counts in whole seconds: round the TTL and the acquire timeout up; without
# auto-renewal it refuses a timeout above expire, so the timeout is capped at expire.
ttl_ms, timeout_ms = int(env["LOCKSIM_TTL_MS"]), int(env["LOCKSIM_ACQUIRE_TIMEOUT_MS"])
renew = env.get("LOCKSIM_WATCHDOG") == "1"
expire = max(1, math.ceil(ttl_ms / 1000))
timeout = math.ceil(timeout_ms / 1000) if renew else min(math.ceil(timeout_ms / 1000), expire)
say("log", message=f"python-redis-lock counts whole seconds: TTL {ttl_ms} ms -> expire={expire} s, "
    f"acquire timeout {timeout_ms} ms -> {timeout} s (rounded up{'' if renew else ', capped at expire'}); "
    f"key 'lock:{env['LOCKSIM_KEY']}'; auto_renewal={renew}; no retry delay (it waits on BLPOP)")
# The renewal thread's failure is an uncaught exception in the library's thread: keep it as a note.
threading.excepthook = lambda a: say("log", message=f"{a.thread.name}: {a.exc_type.__name__}: {a.exc_value}")
conn = redis.StrictRedis.from_url(env["LOCKSIM_NODES"].split(",")[0])
works = [int(w) for w in env["LOCKSIM_WORK_MS"].split(",")]
thinks = [int(t) for t in env["LOCKSIM_THINK_MS"].split(",")]
for i in range(int(env["LOCKSIM_ITERATIONS"])):
    lock = redis_lock.Lock(conn, env["LOCKSIM_KEY"], expire=expire, auto_renewal=renew)
    say("acquiring")
    try:  # its timeout=0 would block forever: a zero timeout is one non-blocking try
        acquired = (lock.acquire(timeout=timeout) if timeout else lock.acquire(blocking=False)) or "timeout"
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

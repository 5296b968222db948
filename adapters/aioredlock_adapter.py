import asyncio, json, os
from aioredlock import Aioredlock, LockError

env = os.environ
def say(event, **kw):
    print(json.dumps({"event": event, **kw}), flush=True)

async def main():
    host, port = env["LOCKSIM_RESOURCE"].rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    async def write():
        writer.write(b"WRITE\n"); await writer.drain(); await reader.readline()
    ttl, delay = int(env["LOCKSIM_TTL_MS"]) / 1000, max(1, int(env["LOCKSIM_RETRY_DELAY_MS"])) / 1000
    # aioredlock takes a count of attempts, not a timeout: as many as fit the acquire timeout
    tries = 1 + int(int(env["LOCKSIM_ACQUIRE_TIMEOUT_MS"]) / 1000 / delay)
    watchdog = env.get("LOCKSIM_WATCHDOG") == "1"  # its auto-extension runs for lock_timeout=None
    manager = Aioredlock(env["LOCKSIM_NODES"].split(","), retry_count=tries, retry_delay_min=delay,
                         retry_delay_max=delay, internal_lock_timeout=ttl)
    works = [int(w) for w in env["LOCKSIM_WORK_MS"].split(",")]
    thinks = [int(t) for t in env["LOCKSIM_THINK_MS"].split(",")]
    loop = asyncio.get_running_loop()
    for i in range(int(env["LOCKSIM_ITERATIONS"])):
        say("acquiring")
        try:
            lock = await manager.lock(env["LOCKSIM_KEY"], lock_timeout=None if watchdog else ttl)
        except LockError as e:
            say("failed", reason=f"{type(e).__name__}: {e}")
        else:
            say("acquired")
            await write()
            end = loop.time() + works[i] / 1000
            while lock.valid and loop.time() < end:  # aioredlock clears valid if its extension fails
                await asyncio.sleep(min(0.01, max(0, end - loop.time())))
            if not lock.valid:
                say("lost", reason="aioredlock set lock.valid to False (its extension failed)")
            else:
                await write()
                say("releasing")
                try:
                    await manager.unlock(lock); say("released", ok=True)
                except Exception as e:
                    say("released", ok=False, error=f"{type(e).__name__}: {e}")
        await asyncio.sleep(thinks[i] / 1000)
    await manager.destroy()

asyncio.run(main())

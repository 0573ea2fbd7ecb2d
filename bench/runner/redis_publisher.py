"""The crawl workers of the ``redis`` scenario: PUBLISH progress messages to Redis.

Run by the runner as ``python -m runner.redis_publisher --url URL --channels N`` on the
client core. Each stdin line ``{"rate": R, "seconds": S, "size": B}`` publishes R
messages/s for S s, round robin over ``crawl:<i>:progress`` (i < N), and answers one JSON
line ``{"published": n, "late_s": ..., "wall_s": ...}`` when done. A message is
``{"t":<µs since the epoch>,"seq":<n>,"crawlId":"<i>","type":"progress","pad":"x…"}``
padded to about B bytes: loadgen times ``t`` and checks ``seq``, which counts per channel
(each client reads one channel) and continues across steps. Messages due at the same
moment go out in one pipeline, each stamped just before it is sent.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import redis


def channel_name(i: int) -> str:
    return f"crawl:{i}:progress"


class Publisher:
    def __init__(self, url: str, channels: int) -> None:
        self.client = redis.Redis.from_url(url)
        self.client.client_setname("bench-publisher")
        self.channels = [channel_name(i) for i in range(channels)]
        self.seq = [0] * channels
        self.next_channel = 0

    def message(self, i: int, pad: str) -> str:
        self.seq[i] += 1
        body = {
            "t": time.time_ns() // 1000,
            "seq": self.seq[i],
            "crawlId": str(i),
            "type": "progress",
            "pad": pad,
        }
        return json.dumps(body, separators=(",", ":"))

    def run(self, rate: float, seconds: float, size: int) -> dict[str, float]:
        base = len(self.message_preview())
        pad = "x" * max(0, size - base)
        total = round(rate * seconds)
        start = time.monotonic()
        sent = 0
        late = 0.0
        while sent < total:
            now = time.monotonic()
            due = min(total, int((now - start) * rate) + 1)
            late = max(late, now - (start + (due - 1) / rate))
            pipe = self.client.pipeline(transaction=False)
            while sent < due:
                i = self.next_channel
                self.next_channel = (i + 1) % len(self.channels)
                pipe.publish(self.channels[i], self.message(i, pad))
                sent += 1
            pipe.execute()
            delay = start + sent / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        return {
            "published": sent,
            "late_s": round(late, 4),
            "wall_s": round(time.monotonic() - start, 3),
        }

    def message_preview(self) -> str:
        body = {"t": time.time_ns() // 1000, "seq": 10**6, "crawlId": "00", "type": "progress"}
        return json.dumps({**body, "pad": ""}, separators=(",", ":"))


def main() -> int:
    p = argparse.ArgumentParser(prog="redis_publisher")
    p.add_argument("--url", required=True)
    p.add_argument("--channels", type=int, required=True)
    args = p.parse_args()
    pub = Publisher(args.url, args.channels)
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        cmd = json.loads(line)
        result = pub.run(float(cmd["rate"]), float(cmd["seconds"]), int(cmd.get("size", 100)))
        print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

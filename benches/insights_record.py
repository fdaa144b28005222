"""Records what the service's insights API says of each guest, once per cycle, and when each
guest's known truth began (its console line), for benches/insights.sh.

    insights_record.py API_URL SPEC.json OUT_DIR

SPEC: {"guests": {name: console_path}, "truths": [{"vm", "workload", "line", "console",
"signals", "condition"}], "steady": [names], "watch": seconds after the last onset,
"deadline": seconds in all}. Writes OUT_DIR/recording.jsonl (one line per VM and cycle: a poll
whose 16 values equal the last one's is the same cycle) and OUT_DIR/onsets.json, with each onset
at the last poll before its line showed (the workload cannot have started earlier).
"""

import json
import sys
import time
import urllib.request

POLL = 0.25


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return json.load(answer)
    except OSError:
        return None


def shown(console, line):
    try:
        with open(console, encoding="utf-8", errors="replace") as text:
            return any(l.startswith(line) for l in text)
    except OSError:
        return False


def main():
    api, spec_path, out = sys.argv[1:4]
    with open(spec_path, encoding="utf-8") as f:
        spec = json.load(f)
    last_values, onsets = {}, {}
    started = last_poll = time.time()
    with open(f"{out}/recording.jsonl", "w", encoding="utf-8") as recording:
        while True:
            now = time.time()
            for truth in spec["truths"]:
                key = (truth["vm"], truth["line"])
                if key not in onsets and shown(truth["console"], truth["line"]):
                    onsets[key] = last_poll
            for vm in spec["guests"]:
                detail = get(f"{api}/api/telemetry/insights/{vm}")
                if not detail or "signals" not in detail:
                    continue
                values = [s["value"] for s in detail["signals"]]
                if values == last_values.get(vm):
                    continue
                last_values[vm] = values
                row = {
                    "t": time.time(),
                    "vm": vm,
                    "values": values,
                    "anomalous": detail["anomalous_signals"],
                    "conditions": [c["kind"] for c in detail["conditions"]],
                }
                recording.write(json.dumps(row) + "\n")
            last_poll = now
            all_seen = len(onsets) == len(spec["truths"])
            if all_seen and now > max(onsets.values()) + spec["watch"]:
                break
            if now > started + spec["deadline"]:
                sys.exit(f"onsets seen: {sorted(onsets)}; not every truth began in time")
            time.sleep(POLL)
    truths = [
        dict(truth, onset=onsets[(truth["vm"], truth["line"])]) for truth in spec["truths"]
    ]
    with open(f"{out}/onsets.json", "w", encoding="utf-8") as f:
        json.dump({"truths": truths, "steady": spec["steady"]}, f)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""The readable end of bench/gpu.sh: one table from the sections' JSON files.

    python3 bench/gpu_table.py OUT_DIR [PEAK_TFLOPS] [MODE]
    python3 bench/gpu_table.py --self-test

No NaN passes: a figure held to a tolerance passes only when it is a finite
number within a finite tolerance and its section said it passed. A NaN, an
infinity, or a null (serde_json writes NaN and infinity as null) fails, named.
`worst_abs_diff` and `finite` serve gpu.sh's trainer summary too.
"""
import glob
import json
import math
import os
import sys
import tempfile

WINDOWS = 88524  # SQuAD v1.1 train windows at 384 / 128


def finite(x):
    """A finite number: not NaN, not an infinity, not null, not a bool."""
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def show(x, spec):
    """`x` formatted by `spec` when finite; else what it is (nan, inf, None)."""
    return format(x, spec) if finite(x) else repr(x)


def verdict(name, value, tolerance, claimed):
    """PASS or FAIL for `value` held to `tolerance`, with why a FAIL failed.
    `not value <= tolerance` rather than `value > tolerance`: a NaN compares
    false both ways, so only this form fails it (finite() already has)."""
    if not finite(value):
        return f"FAIL ({name} is {value!r}, not a finite number)"
    if not finite(tolerance):
        return f"FAIL ({name}'s tolerance is {tolerance!r}, not a finite number)"
    if not value <= tolerance:
        return "FAIL"
    if claimed is not True:
        return "FAIL (the section says it failed)"
    return "PASS"


def worst_abs_diff(name, xs, ys):
    """The largest |x - y| over two equally long series. Raises ValueError
    naming `name[i]` at the first non-finite value, and for a length mismatch
    or nothing to compare: max() would skip a NaN that comes second."""
    if len(xs) != len(ys):
        raise ValueError(f"{name}: {len(xs)} values against {len(ys)}")
    if not xs:
        raise ValueError(f"{name}: nothing to compare")
    for i, (x, y) in enumerate(zip(xs, ys)):
        if not (finite(x) and finite(y)):
            raise ValueError(f"{name}[{i}]: {x!r} against {y!r}, not finite numbers")
    return max(abs(x - y) for x, y in zip(xs, ys))


def load(out, name):
    try:
        with open(os.path.join(out, name + ".json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {"error": "missing"}


def gib(b):
    return f"{b / 2**30:.2f} GiB" if finite(b) else "n/a"


def doctor(out):
    d = load(out, "1-doctor")
    if "error" in d:
        return [f"1 doctor: {d['error']}"]
    gpus = ", ".join(f'{g["name"]} ({g.get("free_mib")} MiB free)' for g in d.get("gpus", [])) or "none"
    lines = [f"1 doctor: built with {d.get('features')}, compute cap {d.get('cuda_compute_cap_built')}; "
             f"GPUs: {gpus}; driver CUDA {d.get('driver_cuda_version')}"]
    # The fused kernels' self-check (doctor --kernels): one line per
    # implementation and dtype, the kernels it switched off named.
    for r in d.get("kernels", []):
        checks = r.get("checks", [])
        off = sorted({c["kernel"] for c in checks if not c.get("passed")})
        dtypes = sorted({c.get("dtype") for c in checks})
        worst = max((c["error"] for c in checks if c.get("passed")), default=None)
        lines.append(f"  kernels: {r.get('implementation')} on {r.get('device')} {'/'.join(dtypes)}: "
                     f"{len(checks) - sum(1 for c in checks if not c.get('passed'))}/{len(checks)} checks pass"
                     f" in {r.get('seconds', 0):.3f} s; worst passing error {worst}; "
                     f"{'off: ' + ', '.join(off) if off else 'every kernel fused'}")
    return lines


def correctness(out):
    c = load(out, "2-correctness")
    if "logits" not in c:
        return [f"2 correctness: {c.get('error')}"]
    lg, tr = c["logits"], c["trajectory"]
    logits = verdict("max |d|", lg.get("max_abs_diff"), lg.get("tolerance"), lg.get("pass"))
    losses = verdict("worst rel", tr.get("worst_relative_diff"), tr.get("tolerance"), tr.get("pass"))
    lines = [f"2 correctness: logits max |d| {show(lg.get('max_abs_diff'), '.2e')} "
             f"(tol {show(lg.get('tolerance'), '.0e')}) {logits}; {tr.get('steps')} steps "
             f"{tr.get('half')} vs f32: worst rel {show(tr.get('worst_relative_diff'), '.2e')} "
             f"(tol {show(tr.get('tolerance'), '.2e')}) {losses}"]
    fg = c.get("fused_vs_generic")
    if fg:
        v = verdict("worst rel", fg.get("worst_relative_diff"), fg.get("tolerance"), fg.get("pass"))
        lines.append(f"  fused vs generic: {fg.get('steps')} lean steps {fg.get('dtype')}, the same masks: "
                     f"worst rel {show(fg.get('worst_relative_diff'), '.2e')} (tol {show(fg.get('tolerance'), '.2e')}) "
                     f"{v}; fused: {', '.join(fg.get('fused_kernels') or []) or 'none'}")
    return lines


def census(out):
    c = load(out, "2-census")
    # The first model's speed run: base on the GPU, tiny in the dry run.
    runs = [load(out, os.path.basename(p)[:-5]) for p in sorted(glob.glob(os.path.join(out, "3-speed-ours-*.json")))]
    ours = next((r for r in runs if "batch" in r), {})
    proxy = c.get("launch_proxy")
    counted = ours.get("launches_per_step")
    return [f"2 launches: census launch_proxy {proxy} at {c.get('batch')}x{c.get('seq')}; counted at the "
            f"launch call on the device, one step of {ours.get('batch')}x{ours.get('seq')}: {counted} "
            f"({ours.get('engine')})"]


def speed(out, peak):
    lines = [f"3 speed: train step, median s/step; MFU against {peak:.0f} TFLOP/s",
             f"  {'':<30}{'s/step':>9}{'samples/s':>11}{'TFLOP/s':>9}{'MFU':>7}{'3 epochs':>10}"]
    for path in sorted(glob.glob(os.path.join(out, "3-speed-ours-*.json"))):
        arch = path.rsplit("-", 1)[1][:-5]
        ours, peer = load(out, f"3-speed-ours-{arch}"), load(out, f"3-speed-peer-{arch}")
        rows = [(f"{arch} squadlab ({ours.get('dtype', '?')})", ours.get("median_seconds"), ours.get("flops"),
                 ours.get("batch"), ours.get("error"))]
        generic = load(out, f"3-speed-generic-{arch}")
        if generic:
            rows.append((f"{arch} squadlab generic graph", generic.get("median_seconds"), generic.get("flops"),
                         generic.get("batch"), generic.get("error")))
        for kind in ("eager", "compile"):
            p = peer.get(kind) or {}
            why = p.get("error") or ("skipped" if p.get("skipped") else None) or peer.get("error")
            rows.append((f"{arch} PyTorch {kind}", p.get("median_seconds"), peer.get("flops"), peer.get("batch"), why))
        for name, s, flops, batch, why in rows:
            # A NaN or zero time is no measurement.
            if not (finite(s) and s > 0 and finite(flops) and finite(batch)):
                lines.append(f"  {name:<30}{'n/a':>9}  {(why or '')[:60]}")
                continue
            tf = flops / s / 1e12
            sps = batch / s
            lines.append(f"  {name:<30}{s:>9.4f}{sps:>11.1f}{tf:>9.1f}{100 * tf / peak:>6.1f}%"
                         f"{3 * WINDOWS / sps / 60:>8.1f} m")
        o, e = ours.get("median_seconds"), (peer.get("eager") or {}).get("median_seconds")
        if finite(o) and finite(e) and e > 0:
            lines.append(f"  {arch}: squadlab / eager = {o / e:.3f}")
    return lines


def memory(out):
    m = load(out, "4-memory")
    if "measured_step_bytes" not in m:
        return [f"4 memory: {m.get('error')}"]
    peers = sorted(glob.glob(os.path.join(out, "3-speed-peer-*.json")))
    peer = load(out, os.path.basename(peers[0])[:-5]) if peers else {}
    peer_peak = (peer.get("eager") or {}).get("peak_memory_bytes")
    ratio = m.get("measured_over_planned")
    ratio_text = f"{ratio:.3f}" if finite(ratio) else f"{ratio!r} FAIL (not a finite number)"
    return [f"4 memory: one step {m['batch']}x{m['seq']} {m['dtype']}: measured {gib(m['measured_step_bytes'])} "
            f"({m['method']}), planned {gib(m['planned_step_bytes'])}, ratio {ratio_text}; "
            f"whole run planned {gib(m['planned_total_bytes'])}; PyTorch eager peak allocated {gib(peer_peak)}"]


def trainer(out):
    t = load(out, "5-trainer")
    if "run-a" not in t:
        return [f"5 trainer: {t.get('error')}"]
    a, b = t["run-a"], t["run-b"]
    if not a["losses"]:
        return ["5 trainer: no steps"]
    bad = [(run, i, x) for run, r in (("run-a", a), ("run-b", b)) for i, x in enumerate(r["losses"]) if not finite(x)]
    ok = t.get("pass") is True and not bad
    why = f" ({bad[0][0]} loss[{bad[0][1]}] is {bad[0][2]!r}, not a finite number)" if bad else ""
    ev = lambda r: f"EM {show(r['eval'].get('exact_match'), '.2f')} F1 {show(r['eval'].get('f1'), '.2f')}" \
        if r.get("eval") else "no eval"
    return [f"5 trainer: {'PASS' if ok else 'FAIL'}{why}; run steps {a['steps'][:1]}..{a['steps'][-1:]}, "
            f"checkpoints {a['checkpoints']}, {ev(a)}, loss {show(a['losses'][0], '.3f')} -> "
            f"{show(a['losses'][-1], '.3f')}; resumed steps {b['steps'][:1]}..{b['steps'][-1:]}, {ev(b)}, "
            f"max |loss diff| on the resumed steps {t.get('resumed_max_loss_diff')}"]


def table(out, peak=788.0, mode="gpu"):
    return ([f"squadlab GPU check ({mode})"] + doctor(out) + correctness(out) + census(out) + speed(out, peak)
            + memory(out) + trainer(out))


def self_test():
    """The verdicts fed NaN, infinity and null, as sections may write them."""
    nan, inf = float("nan"), float("inf")
    for bad in (nan, inf, -inf, None, "0"):
        assert verdict("max |d|", bad, 1e-3, True).startswith("FAIL (max |d| is"), bad
        assert verdict("max |d|", 0.0, bad, True).startswith("FAIL (max |d|'s tolerance"), bad
        for xs in ([1.0, bad], [bad, 1.0]):
            try:
                worst_abs_diff("losses", xs, [1.0, 1.0])
            except ValueError as e:
                assert f"losses[{xs.index(bad)}]" in str(e), e
            else:
                raise AssertionError(f"worst_abs_diff passed {xs}")
    assert verdict("max |d|", 2e-3, 1e-3, True) == "FAIL"
    assert verdict("max |d|", 1e-4, 1e-3, False) == "FAIL (the section says it failed)"
    assert verdict("max |d|", 1e-4, 1e-3, True) == "PASS"
    assert worst_abs_diff("losses", [1.0, 2.5], [1.0, 2.0]) == 0.5
    for mismatch in (([1.0], [1.0, 2.0]), ([], [])):
        try:
            worst_abs_diff("losses", *mismatch)
        except ValueError:
            pass
        else:
            raise AssertionError(f"worst_abs_diff passed {mismatch}")

    # Whole tables from section files claiming a pass over a non-finite figure.
    for bad in (nan, inf, None):
        with tempfile.TemporaryDirectory() as out:
            def write(name, value):
                with open(os.path.join(out, name + ".json"), "w") as f:
                    json.dump(value, f)  # NaN and Infinity as Python writes them
            write("2-correctness", {
                "logits": {"max_abs_diff": bad, "tolerance": 1e-3, "pass": True},
                "trajectory": {"steps": 5, "half": "bf16", "worst_relative_diff": bad,
                               "tolerance": 0.039, "pass": True}})
            write("4-memory", {"measured_step_bytes": 1, "planned_step_bytes": 0, "planned_total_bytes": 0,
                               "batch": 2, "seq": 32, "dtype": "f32", "method": "m",
                               "measured_over_planned": bad})
            run = {"steps": [1, 2], "losses": [2.0, bad], "checkpoints": ["checkpoint-1"], "eval": None}
            write("5-trainer", {"run-a": run, "run-b": run, "pass": True})
            lines = table(out)
            text = "\n".join(lines)
            assert "PASS" not in text, text
            c = next(l for l in lines if l.startswith("2 correctness"))
            assert f"FAIL (max |d| is {bad!r}" in c and f"FAIL (worst rel is {bad!r}" in c, c
            m = next(l for l in lines if l.startswith("4 memory"))
            assert f"ratio {bad!r} FAIL" in m, m
            t = next(l for l in lines if l.startswith("5 trainer"))
            assert f"FAIL (run-a loss[1] is {bad!r}" in t, t
    print("gpu_table self-test: ok")


def main(argv):
    if argv[1:2] == ["--self-test"]:
        self_test()
        return
    out = argv[1]
    peak = float(argv[2]) if len(argv) > 2 else 788.0
    mode = argv[3] if len(argv) > 3 else "gpu"
    print("\n".join(table(out, peak, mode)))


if __name__ == "__main__":
    main(sys.argv)

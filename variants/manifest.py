#!/usr/bin/env python3
"""Writes and verifies the manifest.json of a gguf-loader variant directory.

write:  records name, kind, backends, source, the versions the libraries report, cmake flags,
        the sha256 of every library, the build time, and the third-party runtime libraries
        bundled into the directory (--bundled-library NAME=VERSION or NAME=PACKAGE==VERSION).
verify: for every variant directory under a root, recomputes each sha256 and re-queries the
        versions, and checks that each bundled library is one of the directory's hashed
        libraries; exits non-zero naming the first mismatch.

--abi bitnet-2024 (write) is Microsoft's BitNet fork of llama.cpp (bitnet.cpp, llama.cpp build
~3947, the old llama.h API): its libraries have no version functions, so the manifest records a
fixed build label as llama/ggml version, the ABI and the x86-64 ISA level (--isa), and both write
and verify identify the fork by its exported symbols instead (read with nm -D, without loading
the libraries: the fork's libllama.so/libggml.so carry unversioned sonames that every fork
variant shares, so one process must not load two of them).
"""
import argparse
import ctypes
import datetime
import hashlib
import json
import os
import subprocess
import sys

MANIFEST = "manifest.json"
FORMAT = 1


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def libraries(directory):
    """Regular .so files (symlinks are aliases and not hashed)."""
    return sorted(
        name for name in os.listdir(directory)
        if ".so" in name and not os.path.islink(os.path.join(directory, name))
    )


def query_versions(directory):
    """dlopen the variant's libllama / libggml and ask them their versions."""
    llama = ctypes.CDLL(os.path.join(directory, "libllama.so"), mode=os.RTLD_LOCAL)
    ggml = ctypes.CDLL(os.path.join(directory, "libggml.so"), mode=os.RTLD_LOCAL)
    for lib, name in ((llama, "llama_version"), (ggml, "ggml_version"), (ggml, "ggml_commit")):
        getattr(lib, name).restype = ctypes.c_char_p
    return (
        llama.llama_version().decode(),
        ggml.ggml_version().decode(),
        ggml.ggml_commit().decode(),
    )


# What identifies each known fork ABI: symbols its libraries must export, and must not export.
FORK_ABIS = {
    "bitnet-2024": {
        "label": "bitnet-b3947",
        "isas": ("avx2", "avx512"),
        "exports": {
            "libllama.so": ("llama_load_model_from_file", "llama_new_context_with_model"),
            "libggml.so": ("quantize_i2_s", "ggml_vec_dot_i2_i8_s"),
        },
        "absent": {
            "libllama.so": ("llama_version",),
            "libggml.so": ("ggml_version",),
        },
    },
}


def exported_symbols(path):
    """The dynamic symbols a shared library defines (nm -D --defined-only)."""
    try:
        out = subprocess.run(["nm", "-D", "--defined-only", path], check=True,
                             capture_output=True, text=True).stdout
    except FileNotFoundError:
        sys.exit("nm not found (install binutils)")
    except subprocess.CalledProcessError as e:
        sys.exit(f"nm -D {path} failed: {e.stderr.strip()}")
    return {line.split()[-1].split("@")[0] for line in out.splitlines() if line.strip()}


def check_fork(directory, abi):
    """Exits naming what is wrong unless the directory's libraries are the fork `abi`."""
    spec = FORK_ABIS.get(abi)
    if spec is None:
        sys.exit(f"{directory}: unknown ABI {abi!r} (known: {', '.join(FORK_ABIS)})")
    problems = []
    for lib in sorted(set(spec["exports"]) | set(spec["absent"])):
        path = os.path.join(directory, lib)
        if not os.path.isfile(path):
            problems.append(f"there is no {lib}")
            continue
        symbols = exported_symbols(path)
        missing = [s for s in spec["exports"].get(lib, ()) if s not in symbols]
        present = [s for s in spec["absent"].get(lib, ()) if s in symbols]
        if missing:
            problems.append(f"{lib} lacks {', '.join(missing)}")
        if present:
            problems.append(f"{lib} exports {', '.join(present)} (as upstream llama.cpp does)")
    if problems:
        sys.exit(f"{directory}: not the {abi} fork: {'; '.join(problems)}")


def parse_bundled(entries, directory):
    """`NAME=VERSION` or `NAME=PACKAGE==VERSION` -> {NAME: {package, version, sha256}}."""
    bundled = {}
    for entry in entries:
        name, sep, rest = entry.partition("=")
        if not sep or not name or not rest:
            sys.exit(f"--bundled-library {entry!r}: expected NAME=VERSION or NAME=PACKAGE==VERSION")
        package, sep, version = rest.partition("==")
        if not sep:
            package, version = None, rest
        path = os.path.join(directory, name)
        if not os.path.isfile(path) or os.path.islink(path):
            sys.exit(f"--bundled-library {name}: no such library file in {directory}")
        record = {"version": version, "sha256": sha256(path)}
        if package:
            record["package"] = package
        bundled[name] = record
    return bundled


def write(args):
    bundled = parse_bundled(args.bundled, args.dir)
    if args.abi:
        if args.isa not in FORK_ABIS.get(args.abi, {}).get("isas", ()):
            sys.exit(f"--abi {args.abi} needs --isa, one of "
                     f"{', '.join(FORK_ABIS.get(args.abi, {}).get('isas', ())) or '(unknown ABI)'}")
        check_fork(args.dir, args.abi)
        llama_v = ggml_v = FORK_ABIS[args.abi]["label"]
        commit = ""
    else:
        if args.isa:
            sys.exit("--isa is for fork ABIs only (with --abi)")
        if not args.expect_llama or not args.expect_ggml:
            sys.exit("--expect-llama and --expect-ggml are required (unless --abi)")
        llama_v, ggml_v, commit = query_versions(args.dir)
        if llama_v != args.expect_llama or ggml_v != args.expect_ggml:
            sys.exit(f"built libraries report llama {llama_v} / ggml {ggml_v}, "
                     f"expected {args.expect_llama} / {args.expect_ggml}")
    libs = libraries(args.dir)
    manifest = {
        "format": FORMAT,
        "name": args.name,
        "kind": args.kind,
        "backends": json.loads(args.backends),
        "cpu_modules": sorted(n[len("libggml-cpu-"):-len(".so")] for n in libs
                              if n.startswith("libggml-cpu-") and n.endswith(".so")),
        "source": {"crate": args.source_crate, "version": args.source_version},
        "llama_version": llama_v,
        "ggml_version": ggml_v,
        "ggml_commit": commit,
    }
    if args.abi:
        manifest["abi"] = args.abi
        manifest["isa"] = args.isa
    manifest.update({
        "cmake_flags": args.flags,
        "libraries": {name: sha256(os.path.join(args.dir, name)) for name in libs},
        "aliases": {name: os.readlink(os.path.join(args.dir, name))
                    for name in sorted(os.listdir(args.dir))
                    if os.path.islink(os.path.join(args.dir, name))},
        "build": {
            "finished_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "seconds": args.build_seconds,
        },
    })
    if bundled:
        manifest["bundled_libraries"] = bundled
    with open(os.path.join(args.dir, MANIFEST), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    extra = f" ({len(bundled)} bundled: {', '.join(bundled)})" if bundled else ""
    print(f"manifest: {args.name}: {len(libs)} libraries{extra}, llama {llama_v}, ggml {ggml_v}")


def verify(args):
    root = args.root
    dirs = sorted(d for d in os.listdir(root) if os.path.isfile(os.path.join(root, d, ".complete")))
    if not dirs:
        sys.exit(f"no complete variant directories under {root}")
    for d in dirs:
        path = os.path.join(root, d)
        with open(os.path.join(path, MANIFEST)) as f:
            manifest = json.load(f)
        on_disk = libraries(path)
        if sorted(manifest["libraries"]) != on_disk:
            sys.exit(f"{path}: libraries on disk {on_disk} differ from the manifest's {sorted(manifest['libraries'])}")
        for name, digest in manifest["libraries"].items():
            actual = sha256(os.path.join(path, name))
            if actual != digest:
                sys.exit(f"{path}/{name}: sha256 {actual} != manifest {digest}")
        for name, record in manifest.get("bundled_libraries", {}).items():
            if manifest["libraries"].get(name) != record.get("sha256"):
                sys.exit(f"{path}: bundled library {name} is not a hashed library of the directory "
                         f"or its sha256 differs from the libraries entry")
        abi = manifest.get("abi")
        if abi:
            check_fork(path, abi)
            label = FORK_ABIS[abi]["label"]
            if (manifest["llama_version"], manifest["ggml_version"]) != (label, label):
                sys.exit(f"{path}: manifest says llama {manifest['llama_version']} / ggml "
                         f"{manifest['ggml_version']}, the {abi} build is {label}")
            isa = manifest.get("isa")
            if isa not in FORK_ABIS[abi]["isas"]:
                sys.exit(f"{path}: manifest ISA {isa!r} is not one of {', '.join(FORK_ABIS[abi]['isas'])}")
            avx512 = "-DGGML_AVX512=ON" in manifest.get("cmake_flags", [])
            if avx512 != (isa == "avx512"):
                sys.exit(f"{path}: manifest ISA {isa} but the cmake flags "
                         f"{'enable' if avx512 else 'do not enable'} AVX-512")
            print(f"verified {manifest['name']}: {len(on_disk)} libraries, {abi} ({label}), isa {isa}")
            continue
        llama_v, ggml_v, _ = query_versions(path)
        if (llama_v, ggml_v) != (manifest["llama_version"], manifest["ggml_version"]) or \
                (llama_v, ggml_v) != (args.expect_llama, args.expect_ggml):
            sys.exit(f"{path}: libraries report llama {llama_v} / ggml {ggml_v}; manifest says "
                     f"{manifest['llama_version']} / {manifest['ggml_version']}; pinned "
                     f"{args.expect_llama} / {args.expect_ggml}")
        print(f"verified {manifest['name']}: {len(on_disk)} libraries, llama {llama_v}, ggml {ggml_v}")


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    w = sub.add_parser("write")
    w.add_argument("dir")
    for opt in ("--name", "--kind", "--backends", "--source-crate", "--source-version"):
        w.add_argument(opt, required=True)
    w.add_argument("--expect-llama", help="the version libllama must report (upstream ABI)")
    w.add_argument("--expect-ggml", help="the version libggml must report (upstream ABI)")
    w.add_argument("--abi", choices=sorted(FORK_ABIS),
                   help="a fork ABI: identified by its symbols instead of version functions")
    w.add_argument("--isa", help="the x86-64 ISA level the fork variant was built for (with --abi)")
    w.add_argument("--build-seconds", type=int, required=True)
    w.add_argument("--cmake-flag", dest="flags", action="append", default=[])
    w.add_argument("--bundled-library", dest="bundled", action="append", default=[],
                   metavar="NAME=VERSION", help="a third-party runtime library copied into the directory "
                   "(NAME=PACKAGE==VERSION also records the package it came from)")
    v = sub.add_parser("verify")
    v.add_argument("root")
    v.add_argument("--expect-llama", required=True)
    v.add_argument("--expect-ggml", required=True)
    args = parser.parse_args()
    write(args) if args.command == "write" else verify(args)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Writes and verifies the manifest.json of a gguf-loader variant directory.

write:  records name, kind, backends, source, the versions the libraries report, cmake flags,
        the sha256 of every library and the build time.
verify: for every variant directory under a root, recomputes each sha256 and re-queries the
        versions; exits non-zero naming the first mismatch.
"""
import argparse
import ctypes
import datetime
import hashlib
import json
import os
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


def write(args):
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
        "cmake_flags": args.flags,
        "libraries": {name: sha256(os.path.join(args.dir, name)) for name in libs},
        "aliases": {name: os.readlink(os.path.join(args.dir, name))
                    for name in sorted(os.listdir(args.dir))
                    if os.path.islink(os.path.join(args.dir, name))},
        "build": {
            "finished_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "seconds": args.build_seconds,
        },
    }
    with open(os.path.join(args.dir, MANIFEST), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    print(f"manifest: {args.name}: {len(libs)} libraries, llama {llama_v}, ggml {ggml_v}")


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
    for opt in ("--name", "--kind", "--backends", "--source-crate", "--source-version",
                "--expect-llama", "--expect-ggml"):
        w.add_argument(opt, required=True)
    w.add_argument("--build-seconds", type=int, required=True)
    w.add_argument("--cmake-flag", dest="flags", action="append", default=[])
    v = sub.add_parser("verify")
    v.add_argument("root")
    v.add_argument("--expect-llama", required=True)
    v.add_argument("--expect-ggml", required=True)
    args = parser.parse_args()
    write(args) if args.command == "write" else verify(args)


if __name__ == "__main__":
    main()

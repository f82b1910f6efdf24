# Sourced by the benchmarks that compare ignite with a plain `runc run` (cold-start.sh,
# runc-loops.sh): writes a runc bundle for examples/hello with the exact spec ignite generates.
#
#   runc_bundle IGNITE SERVICE_DIR BUNDLE_DIR
#
# BUNDLE_DIR/config.json gets the spec of `ignite run SERVICE_DIR --print-spec` (rootfs path,
# mounts, seccomp, limits, entrypoint). The spec names the run's own /etc/passwd and
# /etc/group, which exist only while that ignite process holds the run's uid: equivalent files
# (same uid, same entries) are written into BUNDLE_DIR and the spec points at them.
runc_bundle() {
    local ignite=$1 svc=$2 bundle=$3
    mkdir -p "$bundle"
    "$ignite" run "$svc" --print-spec --quiet >"$bundle/config.json"
    python3 - "$bundle" <<'PY'
import json, os, sys
bundle = sys.argv[1]
path = os.path.join(bundle, "config.json")
spec = json.load(open(path))
uid, gid = spec["process"]["user"]["uid"], spec["process"]["user"]["gid"]
files = {
    "/etc/passwd": "root:x:0:0:root:/root:/usr/sbin/nologin\n"
                   "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
                   f"ignite:x:{uid}:{gid}:ignite:/tmp:/usr/sbin/nologin\n",
    "/etc/group": f"root:x:0:\nnobody:x:65534:\nignite:x:{gid}:\n",
}
for m in spec["mounts"]:
    if m["destination"] in files:
        m["source"] = os.path.join(bundle, os.path.basename(m["destination"]))
        with open(m["source"], "w") as f:
            f.write(files[m["destination"]])
        os.chmod(m["source"], 0o644)
json.dump(spec, open(path, "w"), indent=2)
PY
}

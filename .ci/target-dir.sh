# Sourced by the scripts under .ci/ and bench/: where cargo puts this
# workspace's builds, as cargo itself says (CARGO_TARGET_DIR, a
# .cargo/config.toml `build.target-dir`, or ./target), so that the scripts
# find the binaries they built wherever a user builds them.
#   . .ci/target-dir.sh; "$CARGO_TARGET/release/harness" ...
CARGO_TARGET=$(cargo metadata --format-version 1 --no-deps |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
export CARGO_TARGET

# Sourced by the scripts that write results/ files: the machine, for the
# first line of each ("2 cores, Intel(R) Xeon(R) Processor").
#   . .ci/machine.sh; echo "Measured by ... on $(date -u +%F): $MACHINE ..."
MACHINE="$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
export MACHINE

# The Track host tests compile Track and trackdemo with the host's gcc (libc shim).
if ! command -v gcc >/dev/null 2>&1; then
    apt-get update -qq
    apt-get install -y -qq gcc libc6-dev >/dev/null
fi

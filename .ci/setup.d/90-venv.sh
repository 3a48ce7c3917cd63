# A virtual environment made from nothing in the clone on every run, as the README's
# Quick start makes it. Debian 12's python3 cannot make one without the python3-venv
# package ("ensurepip is not available"), and its pip refuses to install into the
# system ("externally-managed-environment"), so the suite always runs from .venv.
command -v python3 >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq python3 >/dev/null; }
rm -rf .venv
if ! python3 -m venv .venv >/dev/null 2>&1; then
    echo "python3 -m venv failed: installing python3-venv"
    rm -rf .venv
    apt-get update -qq
    apt-get install -y -qq python3-venv >/dev/null
    python3 -m venv .venv
fi

# The CAB tests make cabinets with gcab and cross-check extraction with cabextract
# (LZX ones too); the HTTP store tests make a TLS certificate with openssl.
cab_missing=()
for pkg in gcab cabextract openssl; do
    command -v "$pkg" >/dev/null 2>&1 || cab_missing+=("$pkg")
done
if ((${#cab_missing[@]})); then
    apt-get update -qq
    apt-get install -y -qq "${cab_missing[@]}" >/dev/null
fi

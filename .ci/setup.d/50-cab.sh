# The CAB tests make cabinets with gcab and cross-check extraction with cabextract.
cab_missing=()
for pkg in gcab cabextract; do
    command -v "$pkg" >/dev/null 2>&1 || cab_missing+=("$pkg")
done
if ((${#cab_missing[@]})); then
    apt-get update -qq
    apt-get install -y -qq "${cab_missing[@]}" >/dev/null
fi

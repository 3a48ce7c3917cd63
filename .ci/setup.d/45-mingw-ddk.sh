# `kdcon-sim build-driver` compiles WDM drivers against the DDK headers of mingw-w64
# (/usr/share/mingw-w64/include/ddk); the tests build their own WDK-style drivers.
if [ ! -f /usr/share/mingw-w64/include/ddk/wdm.h ]; then
    apt-get update -qq
    apt-get install -y -qq mingw-w64-common >/dev/null
fi

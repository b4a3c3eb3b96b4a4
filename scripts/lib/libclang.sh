# Sourced by scripts/test.sh, scripts/regen-ddboost-bindings.sh and .ci/run.
#
# have_libclang: true when a libclang that bindgen can load is installed:
# libclang.so, libclang.so.N, libclang-N.so or libclang-N.so.M (the names
# clang-sys looks for). libclang-cpp.so.N, which Debian installs with clang
# itself, is the C++ API and does not count.
have_libclang() {
  local f
  while read -r f; do
    [[ ${f##*/} =~ ^libclang(-[0-9][0-9.]*)?\.so(\.[0-9][0-9.]*)?$ ]] && return 0
  done < <(
    ldconfig -p 2>/dev/null | sed -n 's/.* => //p'
    compgen -G '/usr/lib/llvm-*/lib/libclang*.so*'
    compgen -G '/usr/lib*/libclang*.so*'
    compgen -G '/usr/lib/*-linux-gnu/libclang*.so*'
    [[ -n ${LIBCLANG_PATH:-} ]] && compgen -G "$LIBCLANG_PATH/libclang*.so*"
  )
  return 1
}

#!/usr/bin/env bash
# The sanitizer job: builds rnnkit's extension with AddressSanitizer and UndefinedBehaviorSanitizer
# (every SIMD variant), installs that build into a directory of its own, and runs the test suite
# against it. Any ASan report (out-of-bounds access, use after free, ...) or UBSan report
# (misaligned access, signed overflow, ...) aborts the process, so the job fails. See
# docs/reliability.md, "Sanitizers".
#
#   tools/sanitize.sh                  # build, then the whole suite (tests/)
#   tools/sanitize.sh tests/test_fuzz.py -x      # build, then these pytest arguments
#
# Needs what `pip install ".[test]"` needs (a C++ compiler, Python, pip; the build requirements
# come from PyPI in pip's isolated build environment) and a GCC or Clang with libasan.
# Environment: SANITIZE_DIR (default build/sanitize: the CMake build and the installed package;
# kept between runs, so a second run only recompiles what changed), PYTHON (default python3),
# SANITIZE_EXTRA_ISAS (default "v1 v3": SIMD levels whose kernels also run a subset of the
# suite, besides the CPU's best one).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
python=${PYTHON:-python3}
dir=${SANITIZE_DIR:-$root/build/sanitize}
mkdir -p "$dir"
log="$dir/pytest.log"

# The compiler that builds the extension must also provide the runtime preloaded below.
cxx=${CXX:-c++}
asan_runtime=$("$cxx" -print-file-name=libasan.so)
if [ ! -e "$asan_runtime" ]; then
  echo "sanitize.sh: $cxx has no libasan.so (install the compiler's sanitizer runtime)" >&2
  exit 2
fi
# libstdc++ preloaded with it: python does not link it, and ASan's __cxa_throw interceptor finds
# the real one only if it is loaded when ASan starts ("CHECK failed ... real___cxa_throw" at the
# first C++ exception otherwise, ours or another extension's).
preload=$asan_runtime
stdcxx=$("$cxx" -print-file-name=libstdc++.so.6)
if [ -e "$stdcxx" ]; then preload="$preload $stdcxx"; fi

flags="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
flags="$flags -D_GLIBCXX_ASSERTIONS"
echo "== building rnnkit with $flags (into $dir)"
start=$(date +%s)
rm -rf "$dir/pkg"
"$python" -m pip install --no-deps --no-compile --quiet --target "$dir/pkg" \
  -C build-dir="$dir/cmake" \
  -C cmake.build-type=RelWithDebInfo \
  -C cmake.define.CMAKE_CXX_COMPILER="$cxx" \
  -C cmake.define.CMAKE_CXX_FLAGS="$flags" \
  -C cmake.define.CMAKE_MODULE_LINKER_FLAGS="-fsanitize=address,undefined" \
  "$root"
echo "== built in $(( $(date +%s) - start )) s"

# Import the sanitized build, never an installed or editable rnnkit: -S skips site-packages'
# .pth files (an editable install's import hook lives there), and the site-packages directories
# (for pytest, NumPy, Keras, hypothesis) come after the build on the path.
site=$("$python" -c 'import site; print(":".join(site.getsitepackages()))')
export PYTHONPATH="$dir/pkg:$site${PYTHONPATH:+:$PYTHONPATH}"
export RNNKIT_SANITIZE=1  # tests that measure RSS skip themselves (ASan quarantines memory)
# detect_leaks=0: CPython itself does not free everything at exit.
# allocator_may_return_null=1: a request too large for the machine returns null (MemoryError),
# as malloc does, instead of ASan aborting (tests/test_memory.py checks that path).
export ASAN_OPTIONS="detect_leaks=0:allocator_may_return_null=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:abort_on_error=1"

run_pytest() {
  # LD_PRELOAD only for the test process: the ASan runtime must be the first library loaded,
  # and python itself is not built with it (a subprocess a test starts inherits it).
  # --capture=sys: pytest captures Python's output only, so a sanitizer report (written to
  # file descriptor 2 just before the abort) reaches the log instead of a lost capture file.
  LD_PRELOAD="$preload" "$python" -S -m pytest -p no:cacheprovider --capture=sys "$@"
}

check_imported() {
  LD_PRELOAD="$preload" "$python" -S -c '
import sys, rnnkit
assert rnnkit._core.__file__.startswith(sys.argv[1]), rnnkit._core.__file__
print("== testing", rnnkit._core.__file__, "ISA", rnnkit.active_isa())' "$dir/pkg"
}

status=0
check_imported
start=$(date +%s)
run_pytest "${@:-tests}" 2>&1 | tee "$log" || status=$?
echo "== suite ran in $(( $(date +%s) - start )) s"

# The kernels of the other SIMD levels (packet sizes 4 and 8 floats instead of 16): the tests
# that run every kernel path, with each level forced.
if [ $# -eq 0 ]; then
  for isa in ${SANITIZE_EXTRA_ISAS-v1 v3}; do
    if ! RNNKIT_FORCE_ISA=$isa LD_PRELOAD="$preload" "$python" -S -c 'import rnnkit' \
        2>/dev/null; then
      echo "== ISA $isa: not runnable here, skipped"
      continue
    fi
    echo "== ISA $isa"
    RNNKIT_FORCE_ISA=$isa run_pytest -q tests/test_paths.py tests/test_fuzz.py \
      tests/test_numerics.py tests/test_threads.py 2>&1 | tee -a "$log" || status=$?
  done
fi

# Belt and braces: a recoverable report (none should be, with the flags above) still fails.
# "WARNING: AddressSanitizer failed to allocate ..." is expected: the MemoryError tests ask for
# terabytes on purpose (allocator_may_return_null=1).
reports() {
  grep -E "runtime error:|ERROR: AddressSanitizer|WARNING: AddressSanitizer" "$log" |
    grep -v "failed to allocate"
}
if reports >/dev/null; then
  echo "sanitize.sh: sanitizer reports in $log" >&2
  reports | head -20 >&2
  status=1
fi
echo "== sanitize.sh: exit status $status"
exit "$status"

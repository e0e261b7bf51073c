"""Grading helpers: the one place where a student's answer is compared with the reference.

Used by the hidden tests of the graded exercises (``solutions/``), by their visible tests, and by the
reference generator (``autograder/make_references.py``). Hidden tests never compare anything
themselves: they call :func:`check_function`, :func:`check_module` or :func:`check_value` with the
name of a reference item, and these helpers run the student's code on inputs and parameters fixed by
the grader, then compare through :func:`compare`.

Reference items are stored under ``autograder/references/<assignment>/<item>.pt`` (``torch.save`` of
plain containers of float64 CPU tensors, ints, floats and strings; always loaded with
``weights_only=True``), listed in ``autograder/references/MANIFEST.sha256``.

Tolerances
----------
:data:`TOLERANCES` is the one table of tolerances, by device type and dtype of the student's result.
An element passes when::

    |actual - expected| <= atol * scale + rtol * |expected|,    scale = max |expected| (1 if all zero)

so ``atol`` is relative to the magnitude of the whole reference tensor, and both bounds scale with it.
The reference is computed in float64 on the CPU; the student's code runs in float32 (the grader casts
the inputs and loaded weights), on the CPU unless ``CNNBOOK_GRADING_DEVICE=cuda``.

==========  ==========  ======  ======  ==========================================================
device      dtype       rtol    atol    why
==========  ==========  ======  ======  ==========================================================
cpu         float64     1e-10   1e-10   float64 against float64: only summation order differs
cpu         float32     1e-5    1e-5    float32 rounding (eps 1.2e-7) grown over sums of ~10^3 terms
cpu         float16     1e-2    1e-2    10-bit mantissa (eps 9.8e-4)
cpu         bfloat16    5e-2    5e-2    7-bit mantissa (eps 7.8e-3)
cuda        float64     1e-9    1e-9    other algorithms and summation orders than the CPU
cuda        float32     1e-4    1e-4    TF32 off; cuDNN/cuBLAS pick other algorithms (implicit GEMM,
                                        Winograd, split-K) whose rounding differs from the CPU's
cuda        float16     1e-2    1e-2    as on the CPU
cuda        bfloat16    5e-2    5e-2    as on the CPU
==========  ==========  ======  ======  ==========================================================

TF32 (a 10-bit mantissa inside float32 matmuls and convolutions) would add errors of ~1e-3 of the
scale, larger than the float32 rows allow. The grader therefore turns TF32 (and bf16 matmuls on the
CPU) off and asks for deterministic algorithms (:func:`enforce_numerics`) before running the student's
code, and records these flags right after it ran (:func:`numerics_problems`): student code can flip
them, and a result recorded under changed flags fails with a message naming the flag. On the CPU it
also turns oneDNN off: on some CPUs (seen: an AMD EPYC with AVX-512 BF16) oneDNN's AVX-512 backward
convolutions return float32 gradients about 2e-3 off, where torch's own kernels stay within 2e-6. The judge reads
the flags from the record, never from its own process (which may run elsewhere, without a GPU).

Every failure raises :class:`GradingError` (an ``AssertionError``) whose message says what differs:
the type, the shape, the dtype, non-finite values, or the largest error, where it is and how many
values differ.

Modules
-------
``grading.numerics`` (tolerances, numeric flags, the grading device),
``grading.compare`` (the comparison and the visible-test helpers),
``grading.references`` (the reference store and its manifest),
``grading.inputs`` (grader-chosen inputs and measurements),
``grading.records`` (the record protocol between the kernel and the judge),
``grading.checks`` (the checkers and the judge),
``grading.forbidden`` (names an exercise forbids, found with ``ast``),
``grading.hidden`` (the checks and lines of a hidden test, for the trusted grader).
Every public name is re-exported here: ``from cnnbook import grading; grading.check_function``.
"""

from __future__ import annotations

from .checks import cell_done, check_case, check_function, check_module, check_value, judge
from .compare import assert_close, assert_shape, band_problems, check, check_band, compare
from .forbidden import forbidden_uses
from .hidden import find_checks, hidden_lines, scrub
from .inputs import MEASURES, build_module_spec
from .numerics import (
    GRADING_DTYPE,
    TOLERANCES,
    GradingError,
    Tolerance,
    enforce_numerics,
    grading_device,
    grading_device_type,
    numerics_problems,
    tolerance_for,
)
from .records import (
    EXPECTED_KEYS,
    RECORD_ENV,
    RECORD_FORMAT,
    RECORD_MAX_BYTES,
    inputs_only,
    load_record,
    read_regular_file,
    record_path,
    recording_dir,
    save_record,
    strip_expected,
    to_plain,
)
from .references import MANIFEST_NAME, REFERENCE_FORMAT, load_reference, references_root, save_reference
from .references import verify_manifest, write_manifest

__all__ = [
    "GradingError",
    "Tolerance",
    "TOLERANCES",
    "GRADING_DTYPE",
    "tolerance_for",
    "compare",
    "assert_close",
    "assert_shape",
    "check",
    "check_band",
    "band_problems",
    "check_case",
    "enforce_numerics",
    "numerics_problems",
    "grading_device",
    "grading_device_type",
    "references_root",
    "load_reference",
    "save_reference",
    "write_manifest",
    "verify_manifest",
    "check_function",
    "check_module",
    "check_value",
    "build_module_spec",
    "judge",
    "load_record",
    "save_record",
    "read_regular_file",
    "inputs_only",
    "to_plain",
    "forbidden_uses",
    "find_checks",
    "hidden_lines",
    "scrub",
    "cell_done",
]

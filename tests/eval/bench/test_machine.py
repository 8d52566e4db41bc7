"""Where a benchmark ran: the CPU model and the instruction sets that move its figures."""

from __future__ import annotations

from eval.bench.machine import cpu_description, describe_machine, machine_line


def test_a_benchmark_names_the_cpu_and_its_flags() -> None:
    cpuinfo = "processor\t: 0\nmodel name\t: AMD EPYC 7B13\nflags\t\t: fpu sse avx2 fma bmi2\n\nprocessor\t: 1\n"
    assert cpu_description(cpuinfo) == ("AMD EPYC 7B13", ["avx2"])
    vnni = "model name : Intel Xeon\nflags : avx2 avx512f avx512_vnni amx_tile\n"
    assert cpu_description(vnni)[1] == ["avx2", "avx512f", "avx512_vnni", "amx_tile"]
    machine = describe_machine()
    assert machine["cpus"] >= 1 and machine["cpu_model"]
    assert "CPUs (" in machine_line(machine)

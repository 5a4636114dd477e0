from django.apps import AppConfig


class BenchToolsConfig(AppConfig):
    """The in-process counterpart of bench/gantz_tools.yaml's script tool (installed by bench/tools.py only)."""

    name = "bench.tool_app"
    label = "bench_tools"

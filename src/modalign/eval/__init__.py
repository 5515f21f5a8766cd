"""Layer 6: pure metric functions (eval.metrics) and the runners that feed them (eval.suites)."""

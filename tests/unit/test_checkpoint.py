

def test_meta_method_reads_every_layout_that_commands_write():
    from ddspbench.suite.checkpoint import meta_method

    assert meta_method({"method": "prune", "method_params": {"ratio": 0.5}}) == ("prune", {"ratio": 0.5})
    assert meta_method({"method": "kd_audio", "params": {"kd_weight": 0.5}}) == ("kd_audio", {"kd_weight": 0.5})
    assert meta_method({"compress": {"method": "quantize", "params": {"method": "int8"}}}) == ("quantize", {"method": "int8"})
    assert meta_method({"step": 10}) == (None, {})

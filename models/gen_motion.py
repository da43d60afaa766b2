#!/usr/bin/env python3
"""Generates models/motion.onnx: batched background-subtraction motion for many cameras at once.

Run: python3 models/gen_motion.py   (needs the `onnx` package: pip install onnx==1.23.2)
The generated file is committed; src/detect/motion.rs has a pure-Rust reference implementation
of the same arithmetic and the tests check that both agree.

Inputs
  frames      float32 [N,1,H,W]  grey frames, 0..255, one per camera
  background  float32 [N,1,H,W]  each camera's background model (running average)
  params      float32 [3]        threshold, alpha for still pixels, alpha for moving pixels
Outputs
  mask        uint8   [N,1,H,W]  1 where the blurred frame differs from the background by more
                                 than the threshold, dilated by a 5x5 max filter
  background_out float32 [N,1,H,W]  background + alpha * (blurred - background), alpha per pixel
  changed     float32 [N]        fraction of pixels over the threshold (before dilation)
"""
import os
import onnx
from onnx import TensorProto, helper

N, H, W = "N", "H", "W"
inputs = [
    helper.make_tensor_value_info("frames", TensorProto.FLOAT, [N, 1, H, W]),
    helper.make_tensor_value_info("background", TensorProto.FLOAT, [N, 1, H, W]),
    helper.make_tensor_value_info("params", TensorProto.FLOAT, [3]),
]
outputs = [
    helper.make_tensor_value_info("mask", TensorProto.UINT8, [N, 1, H, W]),
    helper.make_tensor_value_info("background_out", TensorProto.FLOAT, [N, 1, H, W]),
    helper.make_tensor_value_info("changed", TensorProto.FLOAT, [N]),
]
idx = lambda name, i: helper.make_tensor(name, TensorProto.INT64, [1], [i])
nodes = [
    # 3x3 box blur; borders average only the pixels inside the frame
    helper.make_node("AveragePool", ["frames"], ["blur"], kernel_shape=[3, 3], pads=[1, 1, 1, 1],
                     count_include_pad=0),
    helper.make_node("Sub", ["blur", "background"], ["delta"]),
    helper.make_node("Abs", ["delta"], ["absdelta"]),
    helper.make_node("Constant", [], ["i0"], value=idx("i0v", 0)),
    helper.make_node("Constant", [], ["i1"], value=idx("i1v", 1)),
    helper.make_node("Constant", [], ["i2"], value=idx("i2v", 2)),
    helper.make_node("Gather", ["params", "i0"], ["thr"], axis=0),
    helper.make_node("Gather", ["params", "i1"], ["a_still"], axis=0),
    helper.make_node("Gather", ["params", "i2"], ["a_move"], axis=0),
    helper.make_node("Greater", ["absdelta", "thr"], ["over"]),
    helper.make_node("Cast", ["over"], ["m"], to=TensorProto.FLOAT),
    # alpha = a_still + (a_move - a_still) * m
    helper.make_node("Sub", ["a_move", "a_still"], ["a_diff"]),
    helper.make_node("Mul", ["m", "a_diff"], ["a_m"]),
    helper.make_node("Add", ["a_m", "a_still"], ["alpha"]),
    helper.make_node("Mul", ["alpha", "delta"], ["step"]),
    helper.make_node("Add", ["background", "step"], ["background_out"]),
    helper.make_node("MaxPool", ["m"], ["dil"], kernel_shape=[5, 5], pads=[2, 2, 2, 2]),
    helper.make_node("Cast", ["dil"], ["mask"], to=TensorProto.UINT8),
    helper.make_node("ReduceMean", ["m"], ["changed"], axes=[1, 2, 3], keepdims=0),
]
graph = helper.make_graph(nodes, "tianwang_motion", inputs, outputs)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="tianwang gen_motion.py")
model.ir_version = 8
model.metadata_props.add(key="tianwang.motion.version", value="1")
onnx.checker.check_model(model, full_check=True)
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "motion.onnx")
onnx.save(model, out)
print(f"wrote {out}")

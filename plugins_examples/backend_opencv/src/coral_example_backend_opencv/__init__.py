"""Example coral-inference backend running ONNX weights on OpenCV's DNN module."""

"""The paper's ablations on the embedded benchmark: a training grid (quasi-dense vs sparse
sampling, with and without the auxiliary loss, several seeds), association variants tracked from
cached detections at frame strides 1, 4 and 8, thresholds tuned on val, results reported on test.
"""

"""What tests, benchmarks and `twincast demo` use to meet a running twin from outside.

A WebRTC guest and an owner's console without a browser, the lip-sync meter, word error
rate, percentiles and a loopback-only network namespace. The product imports none of it.
"""

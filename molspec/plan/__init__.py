"""molspec.plan"""

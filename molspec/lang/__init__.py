"""molspec.lang"""

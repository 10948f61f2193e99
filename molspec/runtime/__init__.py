"""molspec.runtime"""

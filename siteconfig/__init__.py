"""siteconfig"""

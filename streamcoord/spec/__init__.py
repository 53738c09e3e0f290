"""streamcoord.spec"""

"""streamcoord.events"""

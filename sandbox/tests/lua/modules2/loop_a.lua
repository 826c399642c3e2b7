require "loop_b"
return {}

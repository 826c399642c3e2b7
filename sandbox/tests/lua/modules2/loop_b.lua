require "loop_a"
return {}

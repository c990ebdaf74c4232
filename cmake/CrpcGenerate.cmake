# Placeholder; replaced by the protoc-gen-crpc work.
function(crpc_generate)
endfunction()

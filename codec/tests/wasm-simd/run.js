// Loads the simd128 build of the checks and fails unless every check passes.
const fs = require('fs');
WebAssembly.instantiate(fs.readFileSync(process.argv[2]), {}).then(({ instance }) => {
  const mask = instance.exports.check_mask();
  const utf8 = instance.exports.check_utf8();
  console.log(`wasm simd128: mask mismatches ${mask}, utf8 failures ${utf8}`);
  process.exit(mask === 0 && utf8 === 0 ? 0 : 1);
});

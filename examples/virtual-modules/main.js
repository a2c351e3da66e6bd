// `/virtual/config.js` is not a file: plugins/virtual.lua serves it.
import config from "/virtual/config.js";

console.log(`virtual config: answer=${config.answer} builtAt=${config.builtAt}`);
document.querySelector("#answer").textContent = String(config.answer);
document.querySelector("#built-at").textContent = new Date(config.builtAt * 1000).toISOString();

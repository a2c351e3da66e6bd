console.log("hello from lunar");
document.querySelector("p").dataset.loaded = "yes";

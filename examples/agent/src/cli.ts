console.log("launch-agent");

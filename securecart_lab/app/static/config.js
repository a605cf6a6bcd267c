// The API's base URL ("http://host:port") when this storefront is served from another origin, such as an S3
// website bucket (`securecart-lab deploy 2` uploads a config.js naming the load balancer). Empty: same origin.
window.SECURECART_API = "";

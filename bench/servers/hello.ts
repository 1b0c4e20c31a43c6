// The machine's bare baseline: a Fastify hello-world, no plugins.
import Fastify from 'fastify'
import { serveBare } from './bare.ts'

const app = Fastify({ logger: false })
app.get('/', async () => ({ hello: 'world' }))
await serveBare(app)
